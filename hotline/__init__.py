"""Apple 400 hotline assistant: settings, launcher and command-line tools."""
