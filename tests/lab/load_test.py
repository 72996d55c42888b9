"""The lab's own load test, as the seed write-up describes it, kept as the lab wrote it.

It logs in through the load balancer, then sends 50 GET /data and 50 POST /longtask,
at most 10 at a time (a semaphore), with the raw token in the Authorization header,
printing each answer. The only change: the URL can be set with LAB_URL.
"""

import asyncio
import os
import time

import aiohttp

URL = os.environ.get("LAB_URL", "http://127.0.0.1:8000")
semaphore = asyncio.Semaphore(10)


async def login(session):
    async with session.post(
        f"{URL}/login", json={"username": "user1", "password": "password123"}
    ) as response:
        data = await response.json()
        print("Autenticación Satisfactoria. Token:", data["token"])
        return data["token"]


async def fetch_data(session, token, i):
    async with semaphore:
        async with session.get(f"{URL}/data", headers={"Authorization": token}) as response:
            print(
                f"[DATA] Request {i}: Status {response.status}, Response: {await response.json()}"
            )


async def long_task(session, token, i):
    async with semaphore, session.post(
        f"{URL}/longtask", json={}, headers={"Authorization": token}
    ) as response:
        print(
            f"[LONGTASK] Request {i}: Status {response.status}, "
            f"Response: {await response.json()}"
        )


async def main():
    start = time.time()
    async with aiohttp.ClientSession() as session:
        token = await login(session)
        tasks = [fetch_data(session, token, i) for i in range(1, 51)]
        tasks += [long_task(session, token, i) for i in range(51, 101)]
        await asyncio.gather(*tasks)
    print(f"Todas las solicitudes completadas en {time.time() - start:.2f} segundos.")


if __name__ == "__main__":
    asyncio.run(main())
