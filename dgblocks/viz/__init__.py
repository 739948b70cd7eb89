"""dgblocks.viz"""
