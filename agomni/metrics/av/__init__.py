"""Audio-visual metrics: LSE-C / LSE-D (SyncNet lip sync), DeSync (Synchformer), IB-score (ImageBind).

The lip-sync modules (``lipsync``, ``faces``, ``s3fd``) need OpenCV: ``pip install 'agomni[av]'``.
"""
