"""Repositories, one per DynamoDB table: the only code in miro_sync that calls boto3."""
