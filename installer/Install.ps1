# Stream Motion Animator for Windows: find Python 3.10-3.12, install, add to OBS, check (doctor).
# Run by install.bat (double-click); from PowerShell: powershell -ExecutionPolicy Bypass -File installer\Install.ps1
# Arguments are passed on to installer\install.py (e.g. --gpu cpu, --collection "My Show", --uninstall).
$ErrorActionPreference = 'Stop'
$Repo = Split-Path -Parent $PSScriptRoot
Set-Location $Repo

function Test-Python([string]$Exe, [string[]]$Pre = @()) {
    # The version when `$Exe @Pre` runs a 64-bit CPython 3.10-3.12 (not the Microsoft Store stub)
    try {
        $out = & $Exe @Pre -c "import sys, struct; print('%d.%d %d %s' % (sys.version_info[0], sys.version_info[1], struct.calcsize('P') * 8, sys.executable))" 2>$null
    } catch { return $null }
    if ($LASTEXITCODE -ne 0 -or -not $out) { return $null }
    $ver, $bits, $exe = ($out -split ' ', 3)
    if ($exe -like '*WindowsApps*') { return $null }
    if ($bits -ne '64' -or @('3.10', '3.11', '3.12') -notcontains $ver) { return $null }
    return $ver
}

$Python = $null   # the interpreter
$PyPre = @()      # its first arguments (the py launcher's -3.X)
foreach ($v in @('3.12', '3.11', '3.10')) {
    if ((Get-Command py -ErrorAction SilentlyContinue) -and (Test-Python 'py' @("-$v"))) { $Python = 'py'; $PyPre = @("-$v"); break }
}
if (-not $Python) {
    foreach ($v in @('312', '311', '310')) {
        foreach ($base in @("$env:LOCALAPPDATA\Programs\Python", "$env:ProgramFiles")) {
            $exe = Join-Path $base "Python$v\python.exe"
            if ((Test-Path $exe) -and (Test-Python $exe)) { $Python = $exe; break }
        }
        if ($Python) { break }
    }
}
if (-not $Python -and (Get-Command python -ErrorAction SilentlyContinue) -and (Test-Python 'python')) { $Python = 'python' }

if (-not $Python) {
    Write-Host ''
    Write-Host 'Python 3.10, 3.11 or 3.12 (64-bit) is needed and was not found.' -ForegroundColor Yellow
    Write-Host '  1. Download Python 3.12 from https://www.python.org/downloads/windows/'
    Write-Host '     ("Windows installer (64-bit)"; not the Microsoft Store version: OBS cannot use that one).'
    Write-Host '  2. Run it (the defaults are fine), then double-click install.bat again.'
    if (Get-Command winget -ErrorAction SilentlyContinue) {
        Write-Host '  Or, in a terminal:  winget install -e --id Python.Python.3.12'
    }
    Start-Process 'https://www.python.org/downloads/windows/'
    exit 1
}
Write-Host "Using Python: $Python $($PyPre -join ' ')"

while (Get-Process -Name obs64, obs32 -ErrorAction SilentlyContinue) {
    Write-Host 'OBS is running. Close OBS (it rewrites its settings when it exits), then press Enter.' -ForegroundColor Yellow
    [void][Console]::ReadLine()
}

$installArgs = @('installer\install.py')
if ($args -notcontains '--uninstall') { $installArgs += '--obs' }
$installArgs += $args
& $Python @PyPre @installArgs
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
if ($args -contains '--uninstall') { exit 0 }

Write-Host ''
Write-Host 'Checking the setup (stream-animator doctor)...'
& "$Repo\.venv\Scripts\stream-animator.exe" doctor
exit $LASTEXITCODE
