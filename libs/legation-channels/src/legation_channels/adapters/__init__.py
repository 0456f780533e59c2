"""One adapter per kind of channel, each implementing :class:`legation_channels.base.Channel`."""
