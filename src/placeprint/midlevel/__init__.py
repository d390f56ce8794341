"""Style-aware mid-level visual elements (Lee, Efros & Hebert, ICCV 2013): image patches
whose appearance changes consistently with a label that varies in space or time, and
regressors that read the label off them."""
