"""Label tables that come with datasets (ChestX-ray14 ``Data_Entry_2017``, ``path,labels``)."""
