"""Drawing a trial: the network and its weights, the activations and losses, the data, the random source."""
