"""Where rows come from: exported files now, Log Analytics with the Azure Function."""
