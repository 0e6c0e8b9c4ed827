"""The REST token secret, read with its version and written back only if nobody else wrote first.

Secrets Manager has no compare-and-set on PutSecretValue. The new value is put as a version WITHOUT
the AWSCURRENT label (``MIROSYNC_NEXT``), then ``UpdateSecretVersionStage`` moves AWSCURRENT to it
*from the version this writer read*. If another writer moved AWSCURRENT meanwhile, that version no
longer holds the label and Secrets Manager refuses the move (InvalidParameterException): the
writer lost, its staged version never becomes current, and it reloads the winner's value.

Needs ``secretsmanager:GetSecretValue``, ``PutSecretValue`` and ``UpdateSecretVersionStage`` on the
secret. Secret values are never logged or put into an error.
"""

from __future__ import annotations

import uuid
from typing import Any

NEXT_STAGE = "MIROSYNC_NEXT"


class SecretVersionStore:
    def __init__(self, client: Any, secret_id: str) -> None:
        self._client = client
        self.secret_id = secret_id

    def __repr__(self) -> str:
        return f"SecretVersionStore(secret_id={self.secret_id!r})"

    def load(self) -> tuple[str, str]:
        """(value, version id) of AWSCURRENT, read now (no cache)."""
        # The stage is AWS's default; named explicitly because moto server keeps answering the version
        # that was current before an UpdateSecretVersionStage when none is given.
        answer = self._client.get_secret_value(SecretId=self.secret_id, VersionStage="AWSCURRENT")
        return str(answer.get("SecretString") or ""), str(answer["VersionId"])

    def save(self, value: str, replaces: str) -> str | None:
        """Make `value` current if `replaces` still is; the new version id, or None when another
        writer got there first (then nothing of ours is current). Any other failure (access denied,
        throttling, network) raises: the caller (``ExpiringToken``) keeps the pair in memory and calls
        this again later; a version left staged as MIROSYNC_NEXT is harmless, the label moves on."""
        from botocore.exceptions import ClientError

        version = str(uuid.uuid4())
        self._client.put_secret_value(
            SecretId=self.secret_id,
            ClientRequestToken=version,
            SecretString=value,
            VersionStages=[NEXT_STAGE],
        )
        try:
            self._client.update_secret_version_stage(
                SecretId=self.secret_id,
                VersionStage="AWSCURRENT",
                MoveToVersionId=version,
                RemoveFromVersionId=replaces,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidParameterException":
                return None
            raise
        return version


def secrets_manager_client(fetcher: Any = None) -> Any:
    """The fetcher's boto3 client (Powertools' SecretsProvider keeps one as ``.client``), else a new one."""
    client = getattr(fetcher, "client", None)
    if client is not None and hasattr(client, "update_secret_version_stage"):
        return client
    import boto3

    return boto3.client("secretsmanager")
