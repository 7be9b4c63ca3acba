"""The HTTP server: TTS endpoints, auth, limits (and the recording studio's pages and API).

It translates HTTP to calls into ``moksori.synthesis`` and ``moksori.store``; it holds no
synthesis or storage logic itself.
"""

from moksori.server.app import ROUTERS, create_app
from moksori.server.settings import ServerSettings

__all__ = ["ROUTERS", "ServerSettings", "create_app"]
