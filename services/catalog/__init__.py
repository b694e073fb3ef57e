"""The catalog service: category types → categories → subcategories → services; who offers what."""
