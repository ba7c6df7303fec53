"""Understanding a message, one stage per module, in the order a message meets them:
normalise (bot.normalize) → crisis (is a life in danger?) → rank (ranker: learned, which entry, or
none: its off-topic class) → gate and explain (gate, over bot.matcher: lexical, does the FAQ cover
it; asking: the part of a long message that asks) → decide (learnt rejection; answer / did you mean /
fallback). `pipeline.understand` runs the stages after the crisis check for the dialogue.
"""
