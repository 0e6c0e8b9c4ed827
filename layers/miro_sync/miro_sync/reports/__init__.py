"""Inactive-seat and license reports: plain logic over the store's read side, plus renderers.

Nothing here reads os.environ or calls boto3: the seat source and the snapshot history are handed
in, so unit tests use fakes and the CLI hands in the DynamoDB adapters of `miro_sync.store.reports`.
"""

from miro_sync.reports.errors import NoSyncDataError, PriceConfigError, ReportError

__all__ = ["NoSyncDataError", "PriceConfigError", "ReportError"]
