"""Training: channel-response (uplift) learners, off-policy value estimators and Qini evaluation."""
