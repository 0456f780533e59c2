"""Local servers that speak the channels' real protocols, for tests and the local stack.

Each replays the documented request and response shapes of one platform (status codes,
JSON bodies, authentication errors, rate limits with Retry-After, the platform's own
idempotency or conflict behaviour), binds a free port on 127.0.0.1 and records what it
received, so tests assert exactly-once delivery over real sockets. Nothing here is a mock
of our adapters: the adapters talk to these servers with the same libraries they use in
production.
"""

from legation_devstack.channel_servers.base import Canned, Received, RecordingHttpServer
from legation_devstack.channel_servers.bluesky import BlueskyServer
from legation_devstack.channel_servers.chat import ChatMessage, ChatServer
from legation_devstack.channel_servers.mastodon import MastodonServer
from legation_devstack.channel_servers.smtp import SmtpServer
from legation_devstack.channel_servers.stack import ChannelServers
from legation_devstack.channel_servers.telegram import TelegramServer
from legation_devstack.channel_servers.webhook import WebhookReceiver
from legation_devstack.channel_servers.wordpress import WordPressServer

__all__ = [
    "BlueskyServer",
    "Canned",
    "ChannelServers",
    "ChatMessage",
    "ChatServer",
    "MastodonServer",
    "Received",
    "RecordingHttpServer",
    "SmtpServer",
    "TelegramServer",
    "WebhookReceiver",
    "WordPressServer",
]
