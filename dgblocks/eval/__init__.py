"""dgblocks.eval"""
