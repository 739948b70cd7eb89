"""dgblocks.engine"""
