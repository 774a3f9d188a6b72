"""SFT and DPO of the base model on the dialogue dataset (PAPER.md 2.6-2.7)."""
