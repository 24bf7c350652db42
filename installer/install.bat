@echo off
rem Stream Motion Animator for Windows: double-click this file.
rem It finds Python 3.10-3.12 (or says how to get it), installs everything into .venv,
rem adds the script to OBS (close OBS first) and checks the whole setup (doctor).
rem Extra options are passed to installer\install.py, e.g.  install.bat --gpu cpu
powershell -NoProfile -ExecutionPolicy Bypass -File "%~dp0Install.ps1" %*
set RC=%ERRORLEVEL%
echo.
pause
exit /b %RC%
