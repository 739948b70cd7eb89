"""dgblocks.data"""
