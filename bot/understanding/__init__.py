"""Understanding a message, one stage per module, in the order a message meets them:
normalise (bot.normalize) → crisis (is a life in danger?) → rank and decide (which entry, how sure).
"""
