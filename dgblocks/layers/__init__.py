"""Drop-in ``nn.Module`` layers."""

__all__: list[str] = []
