"""relaycast control plane: settings, store, REST API and the relaycast command."""
