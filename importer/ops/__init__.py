"""Operations: the dealers file, the schedules generated from it, and the metrics every run publishes."""
