"""What serves the bot beside its channels: the whole config model and the operator's endpoints."""
