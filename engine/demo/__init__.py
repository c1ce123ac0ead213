"""Demo data sets: ``demo/*.yaml`` (:mod:`.language`) loaded through the REST API
(:mod:`.loader`) by ``campo demo load`` (:mod:`.commands`)."""
