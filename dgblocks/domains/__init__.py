"""dgblocks.domains"""
