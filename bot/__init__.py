"""citizen-bot: walks citizens through VNeID and online public services."""
