"""Sync logic (Miro -> DynamoDB): adapters are passed in, nothing here reads the environment."""
