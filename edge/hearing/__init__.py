"""Hearing: audio files and sources, the microfrontend, the Speech Commands layout, the streaming
keyword spotter and the daemon around it (listen, Wyoming, event socket, systemd service).
Imports edge.core only."""
