"""Reading event sources for event source mappings: polling, filtering, batching, acking."""
