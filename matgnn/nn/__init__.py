"""Building blocks shared by the models: bases, embeddings, MLPs, pooling and one layer per file."""
