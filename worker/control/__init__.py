"""Control channel: the wire protocol (stdlib-only), its server and process metrics."""
