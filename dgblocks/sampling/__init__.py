"""dgblocks.sampling"""
