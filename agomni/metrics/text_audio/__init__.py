"""Text-audio metrics: the LAION-CLAP score (`clap_score`) and its `agomni eval` stage (`eval_stage`)."""
