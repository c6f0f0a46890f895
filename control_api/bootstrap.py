"""First start: the default environment and one full-access key, shown once."""

from __future__ import annotations

from control_api.store import Store
from control_api.store.environments import DEFAULT_ENVIRONMENT

BANNER = "=" * 72


async def bootstrap(store: Store) -> str | None:
    """Return the bootstrap secret when this call created the first environment."""
    if await store.environments.count() > 0:
        return None
    env, _ = await store.environments.ensure(DEFAULT_ENVIRONMENT)
    _, secret = await store.api_keys.create(env.id, "bootstrap admin", "full", [])
    return secret


def banner(secret: str) -> str:
    return "\n".join(
        [
            BANNER,
            "relaycast bootstrap admin API key (full access; shown only this once):",
            "",
            f"    {secret}",
            "",
            "Use it as:  Authorization: Bearer <key>.  Create more with `relaycast keys create`.",
            BANNER,
        ]
    )
