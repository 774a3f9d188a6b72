"""Text generation: batched chat generation, DExperts steering, backends."""
