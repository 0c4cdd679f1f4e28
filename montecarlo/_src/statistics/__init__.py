"""Statistics of a Gram and of many trials: confusion statistics, tails and their exact intervals."""
