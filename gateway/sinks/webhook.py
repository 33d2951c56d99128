"""Webhook delivery of alert notifications (the only module that imports httpx)."""

from __future__ import annotations

import httpx

from gateway.config.rules import WebhookConfig
from rules.persist import OutboxRow


class WebhookError(Exception):
    """The endpoint did not accept the notification (network error or non-2xx status)."""


class WebhookSender:
    """POSTs outbox payloads (JSON) to one endpoint; raises `WebhookError` unless 2xx."""

    def __init__(self, config: WebhookConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._client = client or httpx.AsyncClient(timeout=config.timeout_s)

    async def __call__(self, row: OutboxRow) -> None:
        headers = {"content-type": "application/json", **self.config.headers}
        try:
            resp = await self._client.post(
                str(self.config.url), content=row.payload, headers=headers
            )
        except httpx.HTTPError as exc:
            raise WebhookError(f"{self.config.name}: {type(exc).__name__}: {exc}") from exc
        if not 200 <= resp.status_code < 300:
            raise WebhookError(f"{self.config.name}: HTTP {resp.status_code}")

    async def aclose(self) -> None:
        await self._client.aclose()
