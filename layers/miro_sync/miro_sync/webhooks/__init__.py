"""Board webhook: authenticate a delivery by its path secret, parse it, store it once, refresh the actor.

Kept import-light on purpose (the webhook's cold start is benchmarked): no httpx and no boto3 on this
path (the stores it uses talk through a botocore low-level client, see miro_sync.store.lowlevel).
"""
