"""SFT and DPO of the base model on the dialogue dataset (docs/paper.md §2.6-2.7)."""
