"""View synthesis for place recognition (Torii et al., Tokyo 24/7): perspective cut-outs
of equirectangular panoramas (:mod:`placeprint.synth.cutout`)."""
