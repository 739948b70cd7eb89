"""dgblocks.backbones"""
