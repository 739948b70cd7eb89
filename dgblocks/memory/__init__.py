"""dgblocks.memory"""
