"""Library every service of the suite builds on: settings, database, messaging, web."""
