"""Komek: a Telegram help-line bot for refugees, asylum-seekers and stateless people in Kazakhstan."""
