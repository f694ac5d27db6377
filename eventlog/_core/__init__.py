"""The core: validation (codec), planning, folding and the operations, free of IO."""
