"""One package per service; a service never imports another."""
