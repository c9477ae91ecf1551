"""The operator console served by the gateway at ``/console`` (``gateway.console.app``)."""
