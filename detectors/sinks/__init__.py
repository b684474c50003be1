"""Where alerts go: the Storage Queue the notifier and other consumers read."""
