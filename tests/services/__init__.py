"""Local stand-ins for Azure services that speak the real protocols: Azurite and Log Analytics."""
