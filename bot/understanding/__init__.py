"""Understanding a message, one stage per module (see README "How it works")."""
