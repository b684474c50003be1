"""What every adapter shares to reach Azure: signing in, the storage account's queue clients,
and Table Storage's keys, error codes and clean-up. Adapters import this folder, never one
another.
"""
